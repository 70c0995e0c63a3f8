/** AFP result codes (signed 32-bit, carried in the DSI header's error field). */
export const kFPNoErr = 0;
export const kFPNoMoreSessions = -1068;
export const kASPSessClosed = -1072;
export const kFPAccessDenied = -5000;
export const kFPAuthContinue = -5001;
export const kFPBadUAM = -5002;
export const kFPBadVersNum = -5003;
export const kFPBitmapErr = -5004;
export const kFPCantMove = -5005;
export const kFPDenyConflict = -5006;
export const kFPDirNotEmpty = -5007;
export const kFPDiskFull = -5008;
export const kFPEOFErr = -5009;
export const kFPFileBusy = -5010;
export const kFPFlatVol = -5011;
export const kFPItemNotFound = -5012;
export const kFPLockErr = -5013;
export const kFPMiscErr = -5014;
export const kFPNoMoreLocks = -5015;
export const kFPNoServer = -5016;
export const kFPObjectExists = -5017;
export const kFPObjectNotFound = -5018;
export const kFPParamErr = -5019;
export const kFPRangeNotLocked = -5020;
export const kFPRangeOverlap = -5021;
export const kFPSessClosed = -5022;
export const kFPUserNotAuth = -5023;
export const kFPCallNotSupported = -5024;
export const kFPObjectTypeErr = -5025;
export const kFPTooManyFilesOpen = -5026;
export const kFPServerGoingDown = -5027;
export const kFPCantRename = -5028;
export const kFPDirNotFound = -5029;
export const kFPIconTypeError = -5030;
export const kFPVolLocked = -5031;
export const kFPObjectLocked = -5032;
export const kFPContainsSharedErr = -5033;
export const kFPIDNotFound = -5034;
export const kFPIDExists = -5035;
export const kFPDiffVolErr = -5036;
export const kFPCatalogChanged = -5037;
export const kFPSameObjectErr = -5038;
export const kFPBadIDErr = -5039;
export const kFPPwdSameErr = -5040;
export const kFPPwdTooShortErr = -5041;
export const kFPPwdExpiredErr = -5042;
export const kFPInsideSharedErr = -5043;
export const kFPInsideTrashErr = -5044;
export const kFPPwdNeedsChangeErr = -5045;
export const kFPPwdPolicyErr = -5046;
export const kFPDiskQuotaExceeded = -5047;

import * as all from './result-codes.js';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(all)) if (typeof value === 'number') names.set(value, name);

/** `kFPObjectNotFound (-5018)`, for logs and error messages. */
/** The code's name alone (a metric label): a bounded set of values. */
export function resultLabel(code: number): string {
  return names.get(code) ?? 'unknown';
}

export function resultName(code: number): string {
  return `${names.get(code) ?? 'unknown'} (${code})`;
}
