"""Drop-in APIs on `voxloop serve`: endpoints shaped like other services' documented wire formats,
so their official clients work against the local models by changing one base URL
(docs/compatible-apis.md). Model names map to local models through one table (`names.py`)."""
