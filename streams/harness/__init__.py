"""What only the demo, the benchmarks and the tests use: a worker subprocess, a synthetic day of usage,
an offline replay through the agents' pure code, and a group-less topic reader. The service's agents
never import from here."""
