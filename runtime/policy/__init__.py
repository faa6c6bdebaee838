"""Run-time policy: which Policy rules apply to a flow or call, holds for approval, field masking,
shared per-system limits (rate, concurrency, circuit breaker), maintenance windows, provenance."""
