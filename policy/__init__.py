"""leanstack's policy pack: the rules (`policy.rules`), run offline (`leanstack.policy_check`) or by CrossGuard."""
