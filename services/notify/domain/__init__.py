"""Pure rules of notify: no I/O, no framework imports."""
