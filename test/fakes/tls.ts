/**
 * A self-signed certificate for 127.0.0.1 (P-256, valid until 2126) and its key,
 * for tests that need a TLS server on loopback. For tests only: nothing trusts it,
 * which is what a test of certificate checking wants.
 *
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
 *     -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem
 */
export const TEST_TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwnOOOjg1BL4ec1A/
ZoYKUwZeaVetbWB7Q2L7tDp2JcehRANCAARpmqYrF3js0PFqVodtSTv33QixJ1k0
t8cfrkHyShxzTL64O/1rb83P5//LyAnTfo674dD+zFeb3dmtVuachl7o
-----END PRIVATE KEY-----
`;

export const TEST_TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUKZWy5CW7T+6WTSgrOpEqqBa35l8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMjEwMDgxOVoYDzIxMjYxMTA4
MTAwODE5WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARpmqYrF3js0PFqVodtSTv33QixJ1k0t8cfrkHyShxzTL64O/1rb83P
5//LyAnTfo674dD+zFeb3dmtVuachl7oo2QwYjAdBgNVHQ4EFgQUv5Gc8cZSSz2x
5UQwFwC564FLQnIwHwYDVR0jBBgwFoAUv5Gc8cZSSz2x5UQwFwC564FLQnIwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IGNvryBpTXVWtFGMH5o+TEii6XZDlk8AEp4HiQxf4271AiEA4NRMXe5q7CQHGum1
RLBDpdAXaPojbvXFYblaXDEcRz4=
-----END CERTIFICATE-----
`;
