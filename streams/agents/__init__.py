"""The Faust agents, one module per family: normalize, aggregate, detect, budgets, gpu, store.

Each module declares its agents against :data:`streams.topology.app`; the work is done by a
handler class that takes what it needs (typed tables, a send function, settings) explicitly, so it
can be tested without a broker. :mod:`streams.agents.guard` runs every message: a message that
cannot be processed is quarantined to the dead-letter topic, a broker hiccup is retried.
"""
