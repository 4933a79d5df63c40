"""payflow's contracts: money, the topic catalog and the versioned messages on every topic.

Every other package imports from here; nothing here imports from them or does I/O (the
producers live beside the contracts but take their connections from the caller).
"""
