//! Kafka framing: a 4-byte big-endian length, then the request (header + body).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug)]
pub enum FrameError {
    /// The length prefix is negative, zero or above socket.request.max.bytes.
    BadLength(i32),
    /// The peer closed mid-frame.
    Truncated,
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadLength(n) => write!(
                f,
                "frame length {n} is outside 1..=socket.request.max.bytes"
            ),
            FrameError::Truncated => write!(f, "connection closed in the middle of a frame"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads one frame. `Ok(None)` is a clean close between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_len: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut len_buf[got..]).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = i32::from_be_bytes(len_buf);
    if len <= 0 || len as usize > max_len {
        return Err(FrameError::BadLength(len));
    }
    // Filled straight from the socket, without zeroing it first.
    let len = len as usize;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let rest = (len - buf.len()) as u64;
        match (&mut *reader).take(rest).read_buf(&mut buf).await {
            Ok(0) => return Err(FrameError::Truncated),
            Ok(_) => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames() {
        let mut data: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert_eq!(
            read_frame(&mut data, 100).await.unwrap().unwrap().as_ref(),
            &[1, 2, 3]
        );
        assert!(read_frame(&mut data, 100).await.unwrap().is_none());
        let mut big: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut big, 100).await,
            Err(FrameError::BadLength(_))
        ));
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame(&mut short, 100).await,
            Err(FrameError::Truncated)
        ));
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut neg, 100).await,
            Err(FrameError::BadLength(-1))
        ));
    }
}
