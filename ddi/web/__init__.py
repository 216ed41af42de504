"""What the edge's console and central's fleet console share over HTTP: browser sessions bound
to API tokens (``sessions``) and the admin listener's certificate (``tls``). Framework-light:
central imports these without importing the edge's services."""
