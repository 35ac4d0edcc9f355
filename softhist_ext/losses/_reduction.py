"""torch's loss reductions, shared by the loss modules."""

from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f'softhist: reduction must be "mean", "sum" or "none", got {reduction!r}')


def reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
