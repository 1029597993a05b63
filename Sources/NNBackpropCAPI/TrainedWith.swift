// What a model was trained with, which its file keeps: the loss's name and the class names.

import CNNBackprop
import NNBackprop

@c(nnb_model_get_loss)
public func nnbModelGetLoss(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                            _ needed: UnsafeMutablePointer<Int>?) -> nnb_status {
    capiCall("nnb_model_get_loss") {
        let h = try handle(model)
        guard let loss = h.read({ h.model.loss }) else {
            throw CAPIFailure(NNB_ERR_NOT_READY, "the model has no loss: it was not trained since it was made, and its file named none")
        }
        try copyOut(Array(loss.name.utf8) + [0], to: buf, capacity: capacity, needed: needed, "the loss name", unit: "bytes with its NUL")
    }
}

@c(nnb_model_set_class_names)
public func nnbModelSetClassNames(_ model: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int) -> nnb_status {
    capiCall("nnb_model_set_class_names") {
        let h = try handle(model)
        let n = try size(count, "count")
        var list: [String]? = nil
        if n > 0 {
            guard let names else { throw CAPIFailure.null("names") }
            // No more names than outputs can be right; checked before reading `count` pointers.
            let wanted = h.model.outputSize == 1 ? 2 : h.model.outputSize
            guard n == wanted else {
                throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "\(n) class names for a model with \(h.model.outputSize) output\(h.model.outputSize == 1 ? " (a bce logit: two classes)" : "s"); expected \(wanted)")
            }
            list = try (0..<n).map { i in
                guard let p = names[i] else { throw CAPIFailure.null("names[\(i)]") }
                return String(cString: p)
            }
        }
        try h.mutate("nnb_model_set_class_names") { try h.model.setClassNames(list) }
    }
}

@c(nnb_model_class_count)
public func nnbModelClassCount(_ model: OpaquePointer?, _ count: UnsafeMutablePointer<Int>?) -> nnb_status {
    capiCall("nnb_model_class_count") {
        let h = try handle(model)
        guard let count else { throw CAPIFailure.null("count") }
        count.pointee = h.read { h.model.classNames?.count ?? 0 }
    }
}

@c(nnb_model_get_class_name)
public func nnbModelGetClassName(_ model: OpaquePointer?, _ index: Int, _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                 _ needed: UnsafeMutablePointer<Int>?) -> nnb_status {
    capiCall("nnb_model_get_class_name") {
        let h = try handle(model)
        let names = h.read { h.model.classNames } ?? []
        guard index >= 0, index < names.count else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "class index \(UInt(bitPattern: index)) is out of range: the model has \(names.count) class name\(names.count == 1 ? "" : "s")")
        }
        try copyOut(Array(names[index].utf8) + [0], to: buf, capacity: capacity, needed: needed, "class name \(index)", unit: "bytes with its NUL")
    }
}
