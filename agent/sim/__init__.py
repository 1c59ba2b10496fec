"""Simulators of what the agent talks to: Paytm's cloud (`agent.sim.paytm`, the
`edc-agent emulator` command) and a cash register (`agent.sim.register`, the
`edc-agent register` console).

Not part of the product: no module of the agent or of drivers/ imports this package
(tests/test_import_graph.py checks it), except the commands that launch a simulator
(agent/cli.py, agent/demo.py). A simulator may use the product's own codecs; it must not
borrow the product's reading of Paytm (codes, money, parsers) — see agent.sim.paytm.
"""
