"""The caller is muted while the bot says its closing words.

A Pipecat user-mute strategy (`LLMUserAggregatorParams.user_mute_strategies`), not a frame
processor. Once the flow is at a node where the call ends (an `end` or `transfer` node, or one whose
actions end the conversation), nothing the caller says can be answered: the call hangs up, or is
transferred, after the bot's last words. Barge-in there would only cut those words short, so that
the caller hears silence before the line drops or starts ringing elsewhere; and a reply to what
they said would never be spoken.

So from the first frame after the flow enters such a node, the user aggregator drops the caller's
speech, transcripts and interruptions (Pipecat's mute), and the closing words play whole. The
mute also stops the VAD, which sits in the user aggregator, so a segmented STT (Whisper, which
transcribes at the VAD's stop) transcribes nothing said over the closing words.
"""

from __future__ import annotations

from collections.abc import Callable

from pipecat.frames.frames import Frame
from pipecat.turns.user_mute import BaseUserMuteStrategy


class ClosingWordsMute(BaseUserMuteStrategy):
    """Muted from the moment `closing()` is first true (the flow is at a node that ends the call)
    until the call ends: there is no way back from such a node."""

    def __init__(self, closing: Callable[[], bool]):
        super().__init__()
        self._closing = closing
        self.closed = False

    async def process_frame(self, frame: Frame) -> bool:
        if not self.closed:
            self.closed = self._closing()
        return self.closed
