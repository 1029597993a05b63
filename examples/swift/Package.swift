// swift-tools-version: 6.2
// A package that uses NNBackprop the way yours would: as a dependency. Here it is the checkout
// two folders up; elsewhere, `.package(url: "<the repository>", from: "0.1.0")`.

import PackageDescription

let package = Package(
    name: "Spirals",
    dependencies: [
        .package(name: "NNBackprop", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "Spirals",
            dependencies: [.product(name: "NNBackprop", package: "NNBackprop")]
        ),
    ]
)
