"""The one development harness that tests/, bench/ and chaos/ share; never installed.

    toml       a config as data → TOML text (never edited by string replacement)
    config     the agent's config file as data, its key file, lanes
    pty        a raw pty pair
    process    the agent as a child process, READY on $NOTIFY_SOCKET, kill/stop/restart
    procfs     what /proc says about a process and the machine
    emulator   the Paytm emulator with each answer's time, in this process or its own
    stack      an agent, the emulator and a register on a real pty, in this process
    webstack   the same with the technician page on a test client
    day        one shop day of sales, voids, refunds and links (tests/day, tests/web)
    paytm      the `emulator` fixture (tests/paytm, tests/sim/paytm)
    console    the register console typed into on a terminal (tests/sim, the README's)
    crc        the link CRC from its definition: the codec's and the fuzzers' oracle

pyproject installs only agent* and drivers*: a product never ships its harness.
"""
