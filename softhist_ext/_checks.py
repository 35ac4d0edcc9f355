"""The argument policy of the public functions and modules, in one place.

:func:`arguments` raises ``TypeError`` naming the function, the argument, what
it must be and what it got, as torch's own argument parser does. Values
(ranges, kernel names, dtypes, shapes) are checked where they are used, mostly
by the ops, which see every caller. The wrappers call it in eager mode only:
TorchScript enforces the annotated types itself, naming the argument.
"""

import numbers
from typing import Callable, Dict, Optional, SupportsFloat, Tuple

import torch
from torch import Tensor

from ._ranges import check_own_or_fixed


def is_int(value: object) -> bool:
    """Python and NumPy integers in the int64 range and 0-d integer tensors;
    not bools."""
    if isinstance(value, Tensor):
        return value.dim() == 0 and not (
            value.is_floating_point() or value.is_complex() or value.dtype == torch.bool
        )
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and _in_int64(value)


def _in_int64(value: numbers.Integral) -> bool:
    return -(2**63) <= int(value) < 2**63


def is_real(value: object) -> bool:
    """Python and NumPy real numbers and 0-d real tensors; not bools."""
    if isinstance(value, Tensor):
        return value.dim() == 0 and not (value.is_complex() or value.dtype == torch.bool)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_constant(value: object) -> bool:
    """is_real, but for tensors that require grad: the value of an argument
    that is a constant for autograd, which such a tensor would expect a
    gradient from."""
    return is_real(value) and not (isinstance(value, Tensor) and value.requires_grad)


def _optional(is_kind: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or is_kind(v)


def _one_or_pair(is_kind: Callable[[object], bool]) -> Callable[[object], bool]:
    """One value for both axes of a joint histogram, or an (x, y) pair."""
    return lambda v: is_kind(v) or (
        isinstance(v, (list, tuple)) and len(v) == 2 and all(is_kind(u) for u in v)
    )


def _is_tensor(value: object) -> bool:
    return isinstance(value, Tensor)


def _is_tensor_list(value: object) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_tensor(v) for v in value)


def _is_int_list(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(is_int(v) for v in value)


# Each kind of argument: which values are of that kind, and how to say so.
KINDS: Dict[str, Tuple[Callable[[object], bool], str]] = {
    "Tensor": (_is_tensor, "a Tensor"),
    "Tensor?": (_optional(_is_tensor), "a Tensor or None"),
    "int": (is_int, "an int"),
    "int?": (_optional(is_int), "an int or None"),
    "number": (is_real, "a number"),
    "number?": (_optional(is_real), "a number or None"),
    # (is_real takes 0-d tensors: these say so, for the arguments that keep them.)
    "number or tensor": (is_real, "a number or a 0-d tensor"),
    "number or tensor?": (_optional(is_real), "a number, a 0-d tensor or None"),
    # (Numbers that get no gradient: a 0-d tensor that requires grad is refused.)
    "constant": (is_constant, "a number (a constant for autograd here)"),
    "constant?": (_optional(is_constant), "a number or None (a constant for autograd here)"),
    "constant pair?": (
        _optional(_one_or_pair(is_constant)),
        "a number, an (x, y) pair of numbers, or None (constants for autograd here)",
    ),
    "constant? pair": (
        _one_or_pair(_optional(is_constant)),
        "a number, None, or an (x, y) pair of numbers or None (constants for autograd here)",
    ),
    "str": (lambda v: isinstance(v, str), "a str"),
    "bool": (lambda v: isinstance(v, bool), "a bool"),
    "int list?": (_optional(_is_int_list), "a list of ints or None"),
    "int or int list": (lambda v: is_int(v) or _is_int_list(v), "an int or a list of ints"),
    "int, int list or edges list": (
        lambda v: is_int(v) or _is_int_list(v) or _is_tensor_list(v),
        "an int, a list of ints, or a list of 1-d tensors of edges",
    ),
    "int or edges": (
        lambda v: is_int(v) or (isinstance(v, Tensor) and v.dim() == 1),
        "an int or a 1-d tensor of edges",
    ),
    "number list?": (
        _optional(lambda v: isinstance(v, (list, tuple)) and all(is_real(u) for u in v)),
        "a list of numbers or None",
    ),
    "number? or list": (
        lambda v: v is None or is_real(v) or (
            isinstance(v, (list, tuple)) and all(u is None or is_real(u) for u in v)),
        "a number, None, or a list of numbers or None",
    ),
    "int pair": (_one_or_pair(is_int), "an int or an (x, y) pair of ints"),
    "number pair": (_one_or_pair(is_real), "a number or an (x, y) pair of numbers"),
    "number pair?": (
        _optional(_one_or_pair(is_real)),
        "a number, an (x, y) pair of numbers, or None",
    ),
    "number? pair": (
        _one_or_pair(_optional(is_real)),
        "a number, None, or an (x, y) pair of numbers or None",
    ),
}


def _describe(value: object) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and not _in_int64(value):
        return f"{value}, outside the int64 range"
    if isinstance(value, (list, tuple)):
        text = repr(value)
        return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(value, torch.Tensor):
        return f"a {value.dim()}-d {str(value.dtype).replace('torch.', '')} Tensor"
    return type(value).__name__


def arguments(fn: str, **args: Tuple[object, str]) -> None:
    """Check each ``name=(value, kind)`` against ``KINDS[kind]``.

    Raises:
        TypeError: for the first argument that is not of its kind, e.g.
            ``softhist: histc's input must be a Tensor, got str``.
    """
    for name, (value, kind) in args.items():
        is_kind, expected = KINDS[kind]
        if not is_kind(value):
            raise TypeError(f"softhist: {fn}'s {name} must be {expected}, got {_describe(value)}")


def dim_in_range(fn: str, dim: int, ndim: int) -> None:
    """Raise ``IndexError`` naming ``dim`` unless it indexes a tensor of
    ``ndim`` dimensions (a 0-d tensor takes 0 and -1, as torch's functions do)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"softhist: {fn}'s dim must be in [{-n}, {n - 1}] for a {ndim}-d input, got {dim}"
        )


def module_histograms(fn: str, bins: int, min: Optional[SupportsFloat], max: Optional[SupportsFloat],
                      kappa: object, kernel: str, units: str, own: str) -> None:
    """A module's histogram arguments, checked when it is built rather than at
    its first forward: bins >= 1, a fixed range (min < max) or none (then no
    kappa: see _ranges.check_own_or_fixed, with `units` and `own`), a known
    kernel."""
    if bins < 1:
        raise ValueError(f"softhist: {fn}'s bins must be >= 1, got {bins}")
    check_own_or_fixed(fn, min is not None, max is not None, kappa is not None, units, own)
    if min is not None and max is not None and not float(min) < float(max):
        raise ValueError(f"softhist: {fn}'s min must be below max, got min={min}, max={max}")
    kernels = list(torch.ops.softhist.kernels()) + ["hard"]
    if kernel not in kernels:
        raise ValueError(f"softhist: {fn}'s kernel must be one of {', '.join(kernels)}, got {kernel!r}")
