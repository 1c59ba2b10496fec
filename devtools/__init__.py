"""The one development harness that tests/, bench/ and chaos/ share; never installed.

    toml       a config as data → TOML text (never edited by string replacement)
    config     the agent's config file as data, its key file, lanes
    pty        a raw pty pair
    process    the agent as a child process, READY on $NOTIFY_SOCKET, kill/stop/restart
    procfs     what /proc says about a process and the machine
    emulator   the Paytm emulator with each answer's time, in this process or its own
    stack      an agent, the emulator and a register on a real pty, in this process
    webstack   the same with the technician page on a test client
    ...        the rest: scaffolding more than one test directory uses

pyproject installs only agent* and drivers*: a product never ships its harness.
"""
