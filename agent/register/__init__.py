"""The register's messages (protocol §3) and the register console.

`fields` holds the field rules, `messages` the typed messages, `codec` bytes ⇄ messages,
`ids` the ids we put on what we send; `client` is a register speaking the protocol,
`commands` the console's command language and `console` the `edc-agent register` command.
"""
