"""What one process may use: the memory budget and the sizes derived from it."""

from ragkeep.resources.budget import MemoryBudget

__all__ = ["MemoryBudget"]
