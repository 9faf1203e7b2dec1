"""HTTP/1.1: a sans-IO request assembler over httptools and the asyncio protocol that drives it."""
