// What a bearer token says about itself: the expiry of a JWT (a ServiceAccount token from
// TokenRequest), read without verifying it. Used to warn before a remote's credential runs out.

/** The `exp` claim of a JWT, as a Date; undefined for anything that is not a JWT with one. */
export function tokenExpiry(token: string | undefined): Date | undefined {
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/** When the current user's token in a kubeconfig expires (undefined: no token, or no expiry). */
export function credentialExpiry(kubeConfig: {
  getCurrentUser(): { token?: string } | null;
}): Date | undefined {
  return tokenExpiry(kubeConfig.getCurrentUser()?.token);
}
