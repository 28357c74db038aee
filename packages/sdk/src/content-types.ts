// Apart from protocol.ts, whose schema compilers generate code at run time: a page under a CSP without
// 'unsafe-eval' sends secure messages, and with them this type, but never loads the compilers.

/** The media type of an MLS message (RFC 9420, section 17.10): what a secure conversation's messages are sent as. */
export const MLS_CONTENT_TYPE = 'message/mls'
