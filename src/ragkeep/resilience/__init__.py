"""Keeping answers coming when a part fails: circuit breakers and fallback counters."""

from ragkeep.resilience.breaker import BreakerConfig, CircuitBreaker
from ragkeep.resilience.fallbacks import FALLBACKS, FallbackCounter

__all__ = ["FALLBACKS", "BreakerConfig", "CircuitBreaker", "FallbackCounter"]
