"""A cash register, simulated: the `edc-agent register` console, its command language and
the register-side client of the register protocol."""
