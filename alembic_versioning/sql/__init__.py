"""Set-based statement builders, one module per operation, plus shared constructs."""
