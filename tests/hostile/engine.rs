//! Hostile input against the pure engine: CEL budgets, wide objects, forged owners, leaks.
