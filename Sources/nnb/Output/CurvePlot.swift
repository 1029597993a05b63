import Foundation
import NNBackprop

/// Training curves as a standalone SVG: one panel per quantity (loss, then a metric), each with
/// the training and validation series over the epochs, axes with ticks and labels, and a legend.
struct CurvePlot {
    struct Series {
        var label: String
        /// One value per epoch; NaN where an epoch lacks it.
        var values: [Double]
        var color: String
        var dashed: Bool
    }

    struct Panel {
        var title: String
        var yLabel: String
        var series: [Series]
        /// Tick labels as percentages (for accuracies, values in [0, 1]).
        var percent: Bool
    }

    var title: String
    var panels: [Panel]

    /// Loss and, when logged, accuracy (else R^2, else MAE): train, and the "val_" logs named
    /// `heldOut` ("validation", or "test" when the test rows were scored each epoch).
    init(history: History, title: String, heldOut: String = "validation") {
        self.title = title
        let train = "#1f77b4", valid = "#d62728"
        func panel(_ key: String, _ name: String, _ axis: String, percent: Bool) -> Panel? {
            let t = history[key], v = history["val_" + key]
            var series: [Series] = []
            if t.contains(where: { $0.isFinite }) { series.append(Series(label: "train", values: t, color: train, dashed: false)) }
            if v.contains(where: { $0.isFinite }) { series.append(Series(label: heldOut, values: v, color: valid, dashed: true)) }
            return series.isEmpty ? nil : Panel(title: name, yLabel: axis, series: series, percent: percent)
        }
        var panels = [Panel]()
        if let p = panel("loss", "Loss", "loss", percent: false) { panels.append(p) }
        if let p = panel("accuracy", "Accuracy", "accuracy", percent: true) ?? panel("r2", "R²", "R²", percent: false)
            ?? panel("mae", "Mean absolute error", "MAE", percent: false) {
            panels.append(p)
        }
        self.panels = panels
    }

    /// Writes the SVG atomically (the previous file stays if anything fails).
    func write(to path: String) throws(NNError) {
        try FileIO.writeAtomically(Array(svg().utf8), to: path)
    }

    // MARK: - Drawing

    static let panelWidth = 480.0, height = 380.0
    static let left = 72.0, right = 18.0, top = 58.0, bottom = 56.0

    func svg() -> String {
        let width = CurvePlot.panelWidth * Double(max(panels.count, 1))
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(CurvePlot.height))" \
            viewBox="0 0 \(f(width)) \(f(CurvePlot.height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <title>\(escape(title))</title>
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        for (i, panel) in panels.enumerated() {
            out += draw(panel, x0: Double(i) * CurvePlot.panelWidth)
        }
        out += "</svg>\n"
        return out
    }

    private func draw(_ panel: Panel, x0: Double) -> String {
        let plotLeft = x0 + CurvePlot.left, plotRight = x0 + CurvePlot.panelWidth - CurvePlot.right
        let plotTop = CurvePlot.top, plotBottom = CurvePlot.height - CurvePlot.bottom
        let epochs = panel.series.map(\.values.count).max() ?? 0
        let xTicks = CurvePlot.ticks(1, Double(max(epochs, 1)), integer: true)
        let finite = panel.series.flatMap(\.values).filter(\.isFinite)
        let yTicks = CurvePlot.ticks(finite.min() ?? 0, finite.max() ?? 1, integer: false)
        let xMin = xTicks.first!, xMax = xTicks.last!, yMin = yTicks.first!, yMax = yTicks.last!
        func px(_ epoch: Double) -> Double { plotLeft + (epoch - xMin) / (xMax - xMin) * (plotRight - plotLeft) }
        func py(_ v: Double) -> Double { plotBottom - (v - yMin) / (yMax - yMin) * (plotBottom - plotTop) }
        let step = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        func yLabel(_ v: Double) -> String {
            if panel.percent {
                let decimals = max(0, Int((-log10(step * 100)).rounded(.up)))
                return String(format: "%.\(decimals)f%%", v * 100)
            }
            let decimals = max(0, Int((-log10(step)).rounded(.up)))
            return String(format: "%.\(decimals)f", v)
        }

        var s = "<g class=\"panel\">\n"
        s += "<text x=\"\(f((plotLeft + plotRight) / 2))\" y=\"\(f(plotTop - 14))\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        // Grid and ticks.
        for t in yTicks {
            let y = py(t)
            s += "<line x1=\"\(f(plotLeft))\" y1=\"\(f(y))\" x2=\"\(f(plotRight))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>\n"
            s += "<line x1=\"\(f(plotLeft - 5))\" y1=\"\(f(y))\" x2=\"\(f(plotLeft))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(f(plotLeft - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(yLabel(t))</text>\n"
        }
        for t in xTicks {
            let x = px(t)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(plotTop))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom))\" stroke=\"#f0f0f0\"/>\n"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(plotBottom))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom + 5))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(plotBottom + 19))\" text-anchor=\"middle\">\(Int(t))</text>\n"
        }
        // Axes and their labels.
        s += "<polyline points=\"\(f(plotLeft)),\(f(plotTop)) \(f(plotLeft)),\(f(plotBottom)) \(f(plotRight)),\(f(plotBottom))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f((plotLeft + plotRight) / 2))\" y=\"\(f(CurvePlot.height - 14))\" text-anchor=\"middle\">epoch</text>\n"
        let yMid = (plotTop + plotBottom) / 2
        s += "<text x=\"\(f(x0 + 16))\" y=\"\(f(yMid))\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(x0 + 16)) \(f(yMid)))\">\(escape(panel.yLabel))</text>\n"
        // Series: a line through the finite points, and a marker on each.
        for series in panel.series {
            let points = series.values.enumerated().filter { $0.element.isFinite }
                .map { (px(Double($0.offset + 1)), py($0.element)) }
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<polyline class=\"series\" data-label=\"\(escape(series.label))\" points=\"\(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(series.color)\" stroke-width=\"2\"\(dash)/>\n"
            for (x, y) in points where points.count <= 60 {
                s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"2.5\" fill=\"\(series.color)\"/>\n"
            }
        }
        // Legend, in the right-hand corner (top or bottom) that the curves' last third keeps clear of.
        let legendWidth = 112.0, rowHeight = 18.0
        let legendHeight = rowHeight * Double(panel.series.count) + 8
        let tail = panel.series.flatMap { $0.values.suffix(max(1, $0.values.count / 3)) }.filter(\.isFinite)
        let high = !tail.isEmpty && tail.reduce(0) { $0 + py($1) } / Double(tail.count) < (plotTop + plotBottom) / 2
        let lx = plotRight - legendWidth - 8, ly = high ? plotBottom - legendHeight - 8 : plotTop + 8
        s += "<g class=\"legend\">\n"
        s += "<rect x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"\(f(legendWidth))\" height=\"\(f(legendHeight))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n"
        for (i, series) in panel.series.enumerated() {
            let y = ly + 4 + rowHeight * (Double(i) + 0.5)
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<line x1=\"\(f(lx + 8))\" y1=\"\(f(y))\" x2=\"\(f(lx + 36))\" y2=\"\(f(y))\" stroke=\"\(series.color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(f(lx + 44))\" y=\"\(f(y + 4))\">\(escape(series.label))</text>\n"
        }
        s += "</g>\n</g>\n"
        return s
    }

    /// Round tick values covering [lo, hi] (about six; whole numbers when `integer`); the first
    /// and last are the axis ends.
    static func ticks(_ lo: Double, _ hi: Double, integer: Bool) -> [Double] {
        var lo = lo, hi = hi
        if !(hi > lo) {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        func nice(_ x: Double, round: Bool) -> Double {
            let e = floor(log10(x)), m = x / pow(10, e)
            let n: Double = round ? (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) : (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10)
            return n * pow(10, e)
        }
        var step = nice(nice(hi - lo, round: false) / 5, round: true)
        if integer { step = max(1, step.rounded()) }
        let start = floor(lo / step) * step, end = ceil(hi / step) * step
        let count = Int(((end - start) / step).rounded())
        return (0...max(count, 1)).map { start + Double($0) * step }
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    private func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
