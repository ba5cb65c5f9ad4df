"""Cartesia TTS: Pipecat's websocket service, taking a function call's frames at once.

A function call's frames only pass through a TTS service (behind the audio of the words before
them), so they enter it in the pusher's task when nothing is queued ahead of them
(`processors.prompt_entry`); text and everything else keep to its queues.
"""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService

from processors.prompt_entry import FUNCTION_CALL_FRAMES, PromptEntry


class CartesiaTTS(PromptEntry, CartesiaTTSService):
    prompt_frame_types = FUNCTION_CALL_FRAMES
    prompt_system_frames = False
