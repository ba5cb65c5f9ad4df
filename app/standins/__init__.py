"""Loopback stand-ins for the cloud providers, speaking their wire protocols.

Each one lets Pipecat's real service classes (and the providers' SDKs) run unchanged against
127.0.0.1, and can be told to misbehave (`Fault`). Used by the tests and by `bench/`.
"""
