"""Load, soak and profiling tools: seeder, locust scenarios, the benchmark runner (`make bench`)."""
