"""leanstack's policy pack: the rules (`policy.rules`), run offline (`policy.offline`) or by CrossGuard."""
