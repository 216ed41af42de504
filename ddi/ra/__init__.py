"""Router advertisements (RFC 4861 §6): the message codec, the schedule, the service."""
