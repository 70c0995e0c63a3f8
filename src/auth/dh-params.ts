/**
 * Shared DH constants of the AFP UAMs, used by the server and the project's client.
 * CBC in both DH UAMs restarts from these fixed IVs for every message.
 */
export const C2S_IV = Buffer.from('LWallace', 'latin1');
export const S2C_IV = Buffer.from('CJalbert', 'latin1');

/** DHCAST128's fixed 128-bit prime and generator. */
export const DHCAST128_P = 0xba2873dfb06057d43f2024744ceee75bn;
export const DHCAST128_G = 7n;
