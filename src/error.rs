//! The protocol error catalogue: every error a client can see, with its status, its tusd
//! `ERR_*` code and its message side by side, so the mapping is one exhaustive `match`.
//!
//! Codes and messages are tusd v2.10's (`pkg/handler/unrouted_handler.go`) wherever tusd has
//! the same error, because clients and dashboards match on them. Errors tusd does not have
//! (checksum, expiration, upload tokens) follow the same `ERR_*` style.

use http::StatusCode;

use crate::hooks::{HookType, HttpResponse};
use crate::storage::StorageError;

/// Everything a tus or download request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Category: request validation (no I/O has happened yet).
    #[error("missing, invalid or unsupported Tus-Resumable header")]
    UnsupportedVersion,
    #[error("request origin is not allowed")]
    OriginNotAllowed,
    #[error("maximum size exceeded")]
    MaxSizeExceeded,
    #[error("missing or invalid Content-Type header")]
    InvalidContentType,
    #[error("missing or invalid Upload-Length header")]
    InvalidUploadLength,
    #[error("invalid Upload-Defer-Length header")]
    InvalidUploadDeferLength,
    #[error("provided both Upload-Length and Upload-Defer-Length")]
    AmbiguousUploadLength,
    #[error("missing or invalid Upload-Offset header")]
    InvalidOffset,
    #[error("invalid Upload-Concat header")]
    InvalidConcat,
    #[error("Upload-Concat header is not supported by server")]
    ConcatenationUnsupported,
    #[error("feature not implemented")]
    NotImplemented,
    #[error(
        "unsupported checksum algorithm in Upload-Checksum header (supported: sha1, md5, sha256)"
    )]
    UnsupportedChecksumAlgorithm,
    #[error("invalid Upload-Checksum header: expected `<algorithm> <base64 digest>`")]
    InvalidChecksum,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },

    // Category: upload tokens (the pre-create hook's job under tusd).
    #[error("{0}")]
    InvalidUploadRequest(String),
    #[error("{0}")]
    UploadTokenExpired(String),
    #[error("{0}")]
    UploadTokenInvalid(String),

    // Category: upload state.
    #[error("upload not found")]
    UploadNotFound,
    #[error("upload has expired")]
    UploadExpired,
    /// `current` is the upload's offset, sent back as `Upload-Offset` (the IETF draft requires
    /// it; tus clients can resume from it without another HEAD).
    #[error("mismatched offset")]
    MismatchedOffset { current: u64 },
    #[error("upload's size exceeded")]
    UploadSizeExceeded,
    /// The draft's inconsistent-upload-length problem: the lengths a request indicates, or a
    /// request and the upload, disagree.
    #[error("inconsistent length values for upload")]
    InconsistentLength,
    #[error("one of the partial uploads is not finished")]
    UploadNotFinished,
    #[error("modifying a final upload is not allowed")]
    ModifyFinal,
    /// Another request held the upload longer than the acquire timeout (a long publish).
    /// 423, not tusd's 500: tus-js-client restarts an upload from byte 0 when HEAD answers
    /// 5xx (tus-js-client #895), and retries 423.
    #[error("file currently locked")]
    UploadLocked,
    #[error(
        "an asset already exists at this key and the server keeps existing assets (--overwrite keep)"
    )]
    AssetExists,
    #[error(
        "the asset key conflicts with an existing file or directory (a key cannot be both a file and a folder)"
    )]
    AssetConflict,
    #[error(
        "uploads with an upload token are downloaded from their asset URL, never from the upload URL"
    )]
    UploadNotReadable,
    #[error("{0}")]
    ConcatNotAllowed(&'static str),
    #[error("cannot stream an unfinished upload")]
    IncompleteUpload,
    #[error(
        "the chunk's checksum does not match the Upload-Checksum header; the chunk was discarded"
    )]
    ChecksumMismatch,

    // Category: hooks (tusd's wire format; see `crate::hooks`). The boxed response is what the
    // hook asked to change in the response to the client, applied over the error's own.
    #[error("upload creation has been rejected by server")]
    UploadRejected(Box<HttpResponse>),
    #[error("upload termination has been rejected by server")]
    TerminationRejected(Box<HttpResponse>),
    /// A post-receive hook answered `StopUpload`: the upload is terminated, as in tusd.
    #[error("upload has been stopped by server")]
    UploadStopped(Box<HttpResponse>),
    /// A blocking hook gave no answer (down, timed out, failed) after its retries: tusd answers
    /// 500 and so do we; the detail goes to the log.
    #[error("the {0} hook failed")]
    HookFailed(HookType),
    /// A pre-create hook's `ChangeFileInfo` asked for something we cannot do (tusd: 500).
    #[error("{0}")]
    HookChangeInvalid(String),

    // Category: the request body broke off. What arrived before is kept.
    #[error("upload has been interrupted by another request for this upload resource")]
    UploadInterrupted,
    #[error("request has been interrupted because the server is shutting down")]
    ServerShutdown,
    #[error("server expected to receive more bytes")]
    UnexpectedEof,
    #[error("timeout while reading request body")]
    ReadTimeout,
    #[error("TCP connection reset by peer")]
    ConnectionReset,

    // Category: the server's own failures. The detail goes to the log, not to the client.
    /// The disk (or quota) is full: worth a retry later, and worth saying so.
    #[error(
        "the server's storage is full; nothing of this request was lost that was acknowledged, retry later"
    )]
    StorageFull,
    #[error("storage backend failed")]
    Storage(#[source] StorageError),
}

impl Error {
    /// The HTTP status. Read-timeout and reset are 5xx on purpose (as in tusd): clients retry
    /// 5xx but give up on most 4xx, and both are worth a retry.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnsupportedVersion => StatusCode::PRECONDITION_FAILED,
            Error::OriginNotAllowed => StatusCode::FORBIDDEN,
            Error::MaxSizeExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InvalidContentType => StatusCode::BAD_REQUEST,
            Error::InvalidUploadLength => StatusCode::BAD_REQUEST,
            Error::InconsistentLength => StatusCode::BAD_REQUEST,
            Error::InvalidUploadDeferLength => StatusCode::BAD_REQUEST,
            Error::AmbiguousUploadLength => StatusCode::BAD_REQUEST,
            Error::InvalidOffset => StatusCode::BAD_REQUEST,
            Error::InvalidConcat => StatusCode::BAD_REQUEST,
            Error::ConcatenationUnsupported => StatusCode::BAD_REQUEST,
            Error::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Error::UnsupportedChecksumAlgorithm => StatusCode::BAD_REQUEST,
            Error::InvalidChecksum => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::InvalidUploadRequest(_) => StatusCode::BAD_REQUEST,
            Error::UploadTokenExpired(_) => StatusCode::BAD_REQUEST,
            Error::UploadTokenInvalid(_) => StatusCode::FORBIDDEN,
            Error::UploadNotFound => StatusCode::NOT_FOUND,
            Error::UploadExpired => StatusCode::GONE,
            Error::MismatchedOffset { .. } => StatusCode::CONFLICT,
            Error::UploadSizeExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UploadNotFinished => StatusCode::BAD_REQUEST,
            Error::ModifyFinal => StatusCode::FORBIDDEN,
            Error::UploadLocked => StatusCode::LOCKED,
            // Not 409: tus clients retry 409, and this will not change by retrying.
            Error::AssetExists => StatusCode::FORBIDDEN,
            Error::AssetConflict => StatusCode::FORBIDDEN,
            Error::UploadNotReadable => StatusCode::FORBIDDEN,
            Error::ConcatNotAllowed(_) => StatusCode::BAD_REQUEST,
            Error::IncompleteUpload => StatusCode::BAD_REQUEST,
            // 460 is the checksum extension's own status.
            Error::ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            Error::UploadRejected(_) => StatusCode::BAD_REQUEST,
            Error::TerminationRejected(_) => StatusCode::BAD_REQUEST,
            Error::UploadStopped(_) => StatusCode::BAD_REQUEST,
            Error::HookFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::HookChangeInvalid(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::UploadInterrupted => StatusCode::BAD_REQUEST,
            Error::ServerShutdown => StatusCode::SERVICE_UNAVAILABLE,
            Error::UnexpectedEof => StatusCode::BAD_REQUEST,
            Error::ReadTimeout => StatusCode::INTERNAL_SERVER_ERROR,
            Error::ConnectionReset => StatusCode::INTERNAL_SERVER_ERROR,
            Error::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Error::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// tusd's `ERR_*` code, the first word of every error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnsupportedVersion => "ERR_UNSUPPORTED_VERSION",
            Error::OriginNotAllowed => "ERR_ORIGIN_NOT_ALLOWED",
            Error::MaxSizeExceeded => "ERR_MAX_SIZE_EXCEEDED",
            Error::InvalidContentType => "ERR_INVALID_CONTENT_TYPE",
            Error::InvalidUploadLength => "ERR_INVALID_UPLOAD_LENGTH",
            Error::InconsistentLength => "ERR_INCONSISTENT_UPLOAD_LENGTH",
            Error::InvalidUploadDeferLength => "ERR_INVALID_UPLOAD_LENGTH_DEFER",
            Error::AmbiguousUploadLength => "ERR_AMBIGUOUS_UPLOAD_LENGTH",
            Error::InvalidOffset => "ERR_INVALID_OFFSET",
            Error::InvalidConcat => "ERR_INVALID_CONCAT",
            Error::ConcatenationUnsupported => "ERR_CONCATENATION_UNSUPPORTED",
            Error::NotImplemented => "ERR_NOT_IMPLEMENTED",
            Error::UnsupportedChecksumAlgorithm => "ERR_UNSUPPORTED_CHECKSUM_ALGORITHM",
            Error::InvalidChecksum => "ERR_INVALID_CHECKSUM",
            Error::MethodNotAllowed { .. } => "ERR_METHOD_NOT_ALLOWED",
            Error::InvalidUploadRequest(_) => "ERR_INVALID_UPLOAD_REQUEST",
            Error::UploadTokenExpired(_) => "ERR_UPLOAD_TOKEN_EXPIRED",
            Error::UploadTokenInvalid(_) => "ERR_UPLOAD_TOKEN_INVALID",
            Error::UploadNotFound => "ERR_UPLOAD_NOT_FOUND",
            Error::UploadExpired => "ERR_UPLOAD_EXPIRED",
            Error::MismatchedOffset { .. } => "ERR_MISMATCHED_OFFSET",
            Error::UploadSizeExceeded => "ERR_UPLOAD_SIZE_EXCEEDED",
            Error::UploadNotFinished => "ERR_UPLOAD_NOT_FINISHED",
            Error::ModifyFinal => "ERR_MODIFY_FINAL",
            Error::UploadLocked => "ERR_UPLOAD_LOCKED",
            Error::AssetExists => "ERR_ASSET_EXISTS",
            Error::AssetConflict => "ERR_ASSET_CONFLICT",
            Error::UploadNotReadable => "ERR_UPLOAD_NOT_READABLE",
            Error::ConcatNotAllowed(_) => "ERR_INVALID_CONCAT",
            Error::IncompleteUpload => "ERR_INCOMPLETE_UPLOAD",
            Error::ChecksumMismatch => "ERR_CHECKSUM_MISMATCH",
            Error::UploadRejected(_) => "ERR_UPLOAD_REJECTED",
            Error::TerminationRejected(_) => "ERR_UPLOAD_TERMINATION_REJECTED",
            Error::UploadStopped(_) => "ERR_UPLOAD_STOPPED",
            Error::HookFailed(_) => "ERR_INTERNAL_SERVER_ERROR",
            Error::HookChangeInvalid(_) => "ERR_INTERNAL_SERVER_ERROR",
            Error::UploadInterrupted => "ERR_UPLOAD_INTERRUPTED",
            Error::ServerShutdown => "ERR_SERVER_SHUTDOWN",
            Error::UnexpectedEof => "ERR_UNEXPECTED_EOF",
            Error::ReadTimeout => "ERR_READ_TIMEOUT",
            Error::ConnectionReset => "ERR_CONNECTION_RESET",
            Error::StorageFull => "ERR_STORAGE_FULL",
            Error::Storage(_) => "ERR_INTERNAL_SERVER_ERROR",
        }
    }

    /// The response body: `ERR_CODE: message\n`, exactly as tusd writes it. Storage failures
    /// say only that storage failed: paths and backend messages stay in the log.
    pub fn body(&self) -> String {
        match self {
            // tusd's router answers 405 with this bare body.
            Error::MethodNotAllowed { .. } => "method not allowed".to_owned(),
            _ => format!("{}: {}\n", self.code(), self),
        }
    }
}

impl Error {
    /// What a hook asked to change in the response to this error.
    pub fn hook_reply(&self) -> Option<&HttpResponse> {
        match self {
            Error::UploadRejected(reply)
            | Error::TerminationRejected(reply)
            | Error::UploadStopped(reply) => Some(reply),
            _ => None,
        }
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => Error::UploadNotFound,
            StorageError::AlreadyExists => Error::AssetExists,
            StorageError::Conflict => Error::AssetConflict,
            // ENOSPC and EDQUOT.
            StorageError::Io(e)
                if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(122) =>
            {
                Error::StorageFull
            }
            StorageError::Incomplete => Error::IncompleteUpload,
            // Another instance won the upload: this request stops as a lock hand-over stops it.
            StorageError::TakenOver => Error::UploadInterrupted,
            other => Error::Storage(other),
        }
    }
}

impl From<crate::upload::lock::LockTimeout> for Error {
    fn from(_: crate::upload::lock::LockTimeout) -> Self {
        Error::UploadLocked
    }
}

/// The result type of request handlers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_tusd_shape() {
        assert_eq!(
            Error::MismatchedOffset { current: 0 }.body(),
            "ERR_MISMATCHED_OFFSET: mismatched offset\n"
        );
        assert_eq!(Error::ChecksumMismatch.status().as_u16(), 460);
    }

    #[test]
    fn storage_detail_is_not_in_the_body() {
        let err = Error::from(StorageError::Io(std::io::Error::other("/secret/path")));
        assert!(!err.body().contains("secret"));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
