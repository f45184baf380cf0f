"""Redis/MemoryDB authentication that survives a password rotation.

Imported only when a Redis client is made (it imports redis).  The password is
not fixed at client creation: every new connection asks the credential
provider, which reads the Secrets Manager value through the TTL cache it is
handed (chalicelib.aws_secrets.SecretCache).  When the server rejects it (the
rotation removed the old password before the cache expired), the connection
drops the cached value and authenticates once more with the current secret: no
failed request.

The retry sits in the connection's handshake because that is the one place
both clients share: redis-py's cluster client retries neither an
AuthenticationError nor through the node connections' Retry objects.
"""
from __future__ import annotations

from redis.connection import Connection, SSLConnection
from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError

from chalicelib.aws_secrets import SecretCache


class SecretPasswordProvider(CredentialProvider):
    """(username, password) with the password from a Secrets Manager secret."""

    def __init__(self, username: str | None, secret_id: str, secrets: SecretCache):
        self.username = username
        self.secret_id = secret_id
        self.secrets = secrets

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self.secrets.get(self.secret_id)
        return (self.username, password) if self.username else (password,)


class _ReauthenticateWithFreshSecret:
    def on_connect_check_health(self, check_health: bool = True):
        try:
            return super().on_connect_check_health(check_health=check_health)
        except AuthenticationError:
            provider = self.credential_provider
            if not isinstance(provider, SecretPasswordProvider):
                raise
            # The server answered the AUTH, so the socket is still good: read
            # the secret again and authenticate once more on it.
            provider.secrets.forget(provider.secret_id)
            return super().on_connect_check_health(check_health=check_health)


class SecretAuthConnection(_ReauthenticateWithFreshSecret, Connection):
    pass


class SecretAuthSSLConnection(_ReauthenticateWithFreshSecret, SSLConnection):
    pass


def secret_auth_options(url: str, username: str | None, secret_id: str,
                        secrets: SecretCache) -> tuple[str, dict]:
    """The URL and client options that authenticate with the secret.

    A rediss:// URL would make redis-py (and its cluster client) pick plain
    SSLConnection over ours, so TLS is chosen through the connection class
    and the URL handed on as redis://.
    """
    tls = url.startswith("rediss://")
    options = {
        "credential_provider": SecretPasswordProvider(username, secret_id, secrets),
        "connection_class": SecretAuthSSLConnection if tls else SecretAuthConnection,
    }
    return ("redis://" + url[len("rediss://"):] if tls else url), options
