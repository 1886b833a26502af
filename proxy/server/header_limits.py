"""How long a header line idgate reads may be: aiohttp's parser is held to it, and the nginx
config `idgate render nginx` writes gives nginx the same room, so what nginx passes idgate reads."""

from __future__ import annotations

from typing import Final

#: The longest header idgate reads, a browser's one Cookie header included.
MAX_FIELD_BYTES: Final = 32768
