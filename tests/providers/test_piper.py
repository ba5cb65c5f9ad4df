"""Embedded Piper: one voice per process, sentences spoken before are not synthesized again."""

from __future__ import annotations

from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame
from pipecat.tests.utils import run_test

from app.config.load import load_bot
from app.providers.piper import EmbeddedPiperTTS, PhraseCache, clauses, prewarm, sentences, template_heads
from app.providers.speech import piper_voice_dir
from app.voice import spoken_lines
from tests.conftest import ROOT

MODEL = piper_voice_dir() / "en_US-joe-medium.onnx"


def tts(cache: PhraseCache | None) -> EmbeddedPiperTTS:
    return EmbeddedPiperTTS(model_path=MODEL, voice="en_US-joe-medium", cache=cache)


async def speak(service: EmbeddedPiperTTS, text: str) -> bytes:
    down, _ = await run_test(service, frames_to_send=[TTSSpeakFrame(text)])
    return b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))


def test_calls_share_one_voice():
    assert tts(None)._voice is tts(None)._voice


async def test_a_sentence_spoken_twice_is_synthesized_once():
    cache = PhraseCache()
    first = await speak(tts(cache), "What day would you like to come in?")
    assert (cache.hits, cache.misses) == (0, 1)
    second = await speak(tts(cache), "What day would you like to come in?")
    assert (cache.hits, cache.misses) == (1, 1)
    assert first and second == first


async def test_without_a_cache_every_sentence_is_synthesized():
    assert await speak(tts(None), "Goodbye!")


def test_cache_drops_least_recently_used_beyond_its_budget():
    cache = PhraseCache(max_bytes=10)
    cache.put("v", "one", [b"12345"])
    cache.put("v", "two", [b"12345"])
    assert cache.get("v", "one") == [b"12345"]  # now most recent
    cache.put("v", "three", [b"12345"])
    assert ("v", "two") not in cache and ("v", "one") in cache and ("v", "three") in cache


def test_sentences_are_cut_where_tts_cuts_them():
    assert sentences("Thanks for calling. Would you like to book at 10 a.m. today?") == ["Thanks for calling.", "Would you like to book at 10 a.m. today?"]


async def test_prewarm_caches_the_flows_fixed_lines():
    cache = PhraseCache()
    lines = spoken_lines(load_bot("bot.yaml"))
    assert "What day would you like to come in?" in lines
    added = await prewarm(MODEL, lines[:3], cache)
    assert added >= 3 and (MODEL.stem, "What day would you like to come in?") not in cache
    assert (MODEL.stem, sentences(lines[0])[0]) in cache
    assert await prewarm(MODEL, lines[:3], cache) == 0


def test_a_long_sentence_is_split_at_its_first_clause_only():
    assert clauses("Let me read that back: a medium margherita pizza and a sprite.") == [
        "Let me read that back:", "a medium margherita pizza and a sprite.",
    ]  # fmt: skip
    assert clauses("Got it, a medium margherita pizza and a sprite, for pickup.") == ["Got it,", "a medium margherita pizza and a sprite, for pickup."]
    assert clauses("What day would you like to come in?") == ["What day would you like to come in?"]  # short: whole
    assert clauses("That comes to 1,250 dollars for the whole wedding party at noon.") == [
        "That comes to 1,250 dollars for the whole wedding party at noon.",
    ]  # a thousands separator is not a clause boundary
    assert clauses("Sure, and your number is five five five one two.")[0] == "Sure,"
    assert clauses("I have that down for you now, thanks so much, Tom.") == ["I have that down for you now,", "thanks so much, Tom."]


def test_template_heads_are_the_fixed_first_clause_of_templated_lines(tmp_path):
    assert template_heads(["Let me read that back: {{ cart }}.", "So that's a {{ service }}.", "Hello."]) == ["Let me read that back:"]
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/ordering.yaml'}")
    (tmp_path / "bot.yaml").write_text(text)
    assert "Let me read that back:" in spoken_lines(load_bot(tmp_path / "bot.yaml"))


async def test_an_uncached_long_sentence_plays_its_cached_head_then_synthesizes_the_rest():
    cache = PhraseCache()
    await prewarm(MODEL, ["Let me read that back:"], cache)
    service = tts(cache)
    audio = await speak(service, "Let me read that back: a large pepperoni pizza and a coke.")
    assert (cache.hits, cache.misses) == (1, 2)  # whole sentence: miss; head: hit; rest: miss
    whole = await speak(tts(None), "Let me read that back: a large pepperoni pizza and a coke.")
    assert abs(len(audio) - len(whole)) < len(whole) * 0.25  # the same words, said in two parts
    assert (MODEL.stem, "a large pepperoni pizza and a coke.") in cache
