/**
 * How long brainstem keeps the files users sent it: the documents under
 * `<dataDir>/uploads/` and the copies the Claude CLI makes of the images it
 * is sent. Long enough for the conversation about them, not forever (a
 * document may be 20 MB, and a photo a day adds up over months).
 */
export const SENT_FILES_KEEP_DAYS = 7;
