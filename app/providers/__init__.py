"""bot.yaml provider names -> Pipecat services, walking each chain in fallback order."""
