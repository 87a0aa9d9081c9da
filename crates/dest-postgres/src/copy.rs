//! Postgres binary COPY encoding of staging rows (sans-IO).

use bytes::{BufMut, Bytes, BytesMut};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds between the Unix epoch and Postgres' epoch (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Bytes of the COPY header: signature, flags, header extension length.
const HEADER: usize = SIGNATURE.len() + 8;

/// Rows of one batch, encoded after the COPY header, so that [`CopyRows::framed`] only adds
/// the trailer (no copy of the batch).
#[derive(Debug)]
pub(crate) struct CopyRows {
    buf: BytesMut,
    rows: usize,
}

impl Default for CopyRows {
    fn default() -> CopyRows {
        let mut buf = BytesMut::new();
        buf.put_slice(SIGNATURE);
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension length
        CopyRows { buf, rows: 0 }
    }
}

impl CopyRows {
    pub(crate) fn new() -> CopyRows {
        CopyRows::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of the encoded rows.
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len() - HEADER
    }

    /// Forgets every row after the first `rows` (which took `bytes` bytes).
    pub(crate) fn truncate(&mut self, rows: usize, bytes: usize) {
        self.rows = rows;
        self.buf.truncate(HEADER + bytes);
    }

    pub(crate) fn begin_row(&mut self, fields: i16) {
        self.buf.put_i16(fields);
        self.rows += 1;
    }

    pub(crate) fn null(&mut self) {
        self.buf.put_i32(-1);
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.buf.put_i32(8);
        self.buf.put_i64(value);
    }

    pub(crate) fn text(&mut self, value: &[u8]) {
        self.buf.put_i32(value.len() as i32);
        self.buf.put_slice(value);
    }

    /// jsonb's binary form is a version byte (1) followed by the JSON text.
    pub(crate) fn jsonb(&mut self, json_text: &[u8]) {
        self.buf.put_i32(json_text.len() as i32 + 1);
        self.buf.put_u8(1);
        self.buf.put_slice(json_text);
    }

    pub(crate) fn boolean(&mut self, value: bool) {
        self.buf.put_i32(1);
        self.buf.put_u8(u8::from(value));
    }

    /// A timestamptz from Unix microseconds; NULL when out of range.
    pub(crate) fn timestamptz_micros(&mut self, unix_micros: i64) {
        match unix_micros.checked_sub(PG_EPOCH_OFFSET_MICROS) {
            Some(pg_micros) => {
                self.buf.put_i32(8);
                self.buf.put_i64(pg_micros);
            }
            None => self.null(),
        }
    }

    /// The whole COPY stream: header, rows, trailer.
    pub(crate) fn framed(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_rows() {
        let mut rows = CopyRows::new();
        rows.begin_row(2);
        rows.int8(7);
        rows.null();
        let bytes = rows.framed();
        assert_eq!(&bytes[..11], SIGNATURE);
        assert_eq!(bytes.len(), 11 + 8 + 2 + 12 + 4 + 2);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xff, 0xff]);
    }
}
