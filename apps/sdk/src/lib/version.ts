/**
 * The SDK's version: unicrm's version (`UNICRM_VERSION` of the core; a test keeps them equal), sent as
 * `User-Agent: unicrm-sdk/<version>` by the remote client. A literal, so that the remote client and the CLI's remote
 * mode do not load the core.
 */
export const SDK_VERSION = '0.1.0';
