"""Local tooling (not deployed): the local stack, its provisioning and the event runner."""
