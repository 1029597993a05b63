"""The ctypes structs of nnbackprop._lib against the C headers: the same fields, in the same
order, at the same offsets, of the same types, and the same sizeof. A C compiler reads the
headers (the test is skipped without one); the struct_size that the library's _init functions
set is checked everywhere."""

import ctypes
import os
import pathlib
import shutil
import subprocess

import pytest

from nnbackprop import _lib

INCLUDE = pathlib.Path(__file__).resolve().parents[2] / "include"

STRUCTS = {
    _lib.LayerSpec: "nnb_layer_spec",
    _lib.ModelInfo: "nnb_model_info",
    _lib.EpochReport: "nnb_epoch_report",
    _lib.TrainOptions: "nnb_train_options",
    _lib.ActivationPlugin: "nnb_activation_plugin",
    _lib.LossPlugin: "nnb_loss_plugin",
}

# ctypes field type -> the C types a member declared so may have (None: only sizes are compared,
# as for function pointers). On the LP64 ABIs this runs on, c_int64 is c_long and int64_t long.
C_TYPES = {
    ctypes.c_uint32: ["uint32_t"],
    ctypes.c_int32: ["int32_t"],
    ctypes.c_int64: ["int64_t"],
    ctypes.c_uint64: ["uint64_t"],
    ctypes.c_float: ["float"],
    ctypes.c_double: ["double"],
    ctypes.c_char_p: ["const char *"],
    ctypes.c_void_p: ["void *", "const void *"],
}
ENUM_TYPES = ["int", "unsigned int"]  # a C enum's compatible type is the compiler's choice


def c_types(struct, name, ctype):
    if issubclass(ctype, ctypes.Array):
        return c_types(struct, name, ctype._type_)
    if ctype is ctypes.c_int and name == "type":  # nnb_layer_spec.type is the enum nnb_layer_type
        return ENUM_TYPES
    return C_TYPES.get(ctype)


def probe_source():
    lines = [
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdio.h>",
        '#include "nnbackprop.h"',
        '#include "nnbackprop_plugin.h"',
        "int main(void) {",
    ]
    for struct, c_name in STRUCTS.items():
        lines.append(f'    printf("{c_name} sizeof %zu\\n", sizeof({c_name}));')
        for name, ctype in struct._fields_:
            member = f"(({c_name} *)0)->{name}"
            element = member + ("[0]" if issubclass(ctype, ctypes.Array) else "")
            allowed = c_types(struct, name, ctype)
            if allowed is None:
                match = "1"
            else:
                match = f"_Generic({element}, {', '.join(f'{t}: 1' for t in allowed)}, default: 0)"
            lines.append(
                f'    printf("{c_name} {name} %zu %zu %d\\n", offsetof({c_name}, {name}), sizeof({member}), {match});'
            )
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n"


def test_ctypes_structs_match_the_headers(tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to read the headers with")
    source = tmp_path / "layout.c"
    source.write_text(probe_source())
    exe = tmp_path / "layout"
    # A ctypes field the C struct lacks fails here, naming it.
    command = [cc, "-std=c11", "-I", str(INCLUDE), str(source), "-o", str(exe)]
    build = subprocess.run(command, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    c_side = {tuple(line.split()[:2]): line.split()[2:] for line in out}
    problems = []
    for struct, c_name in STRUCTS.items():
        size = int(c_side[(c_name, "sizeof")][0])
        if ctypes.sizeof(struct) != size:
            problems.append(f"sizeof({c_name}) is {size}, ctypes {struct.__name__} has {ctypes.sizeof(struct)}")
        for name, ctype in struct._fields_:
            offset, member_size, type_ok = map(int, c_side[(c_name, name)])
            field = getattr(struct, name)
            if (field.offset, field.size) != (offset, member_size):
                problems.append(
                    f"{c_name}.{name}: C offset {offset} size {member_size}, "
                    f"ctypes offset {field.offset} size {field.size}"
                )
            if not type_ok:
                problems.append(f"{c_name}.{name}: the C type is none of {c_types(struct, name, ctype)}")
    assert not problems, "\n".join(problems)


def test_init_functions_set_the_ctypes_sizeof():
    options = _lib.TrainOptions()
    _lib.lib.nnb_train_options_init_sized(ctypes.byref(options), ctypes.sizeof(options))
    assert options.struct_size == ctypes.sizeof(_lib.TrainOptions)
    assert options.resume == 0  # the default, in the last field
    spec = _lib.LayerSpec()
    _lib.lib.nnb_layer_spec_init_sized(ctypes.byref(spec), ctypes.sizeof(spec))
    assert spec.struct_size == ctypes.sizeof(_lib.LayerSpec)


def test_the_plain_init_symbols_fill_only_the_0_1_layout():
    """A program built against the 0.1 header calls nnb_layer_spec_init / nnb_train_options_init
    with its smaller struct: the library must write nothing past that struct's end."""
    spec_buf = (ctypes.c_ubyte * ctypes.sizeof(_lib.LayerSpec))(*([0xAB] * ctypes.sizeof(_lib.LayerSpec)))
    _lib.lib.nnb_layer_spec_init(ctypes.byref(spec_buf))
    old_spec = _lib.LayerSpec.type_name.offset  # the 0.1 struct ended here
    assert int.from_bytes(bytes(spec_buf[:4]), "little") == old_spec
    assert all(b == 0xAB for b in spec_buf[old_spec:]), "bytes past the 0.1 nnb_layer_spec were written"
    opt_buf = (ctypes.c_ubyte * ctypes.sizeof(_lib.TrainOptions))(*([0xAB] * ctypes.sizeof(_lib.TrainOptions)))
    _lib.lib.nnb_train_options_init(ctypes.byref(opt_buf))
    old_opt = _lib.TrainOptions.resume.offset
    assert int.from_bytes(bytes(opt_buf[:4]), "little") == old_opt
    assert all(b == 0xAB for b in opt_buf[old_opt:]), "bytes past the 0.1 nnb_train_options were written"
