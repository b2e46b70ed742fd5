//! A bounds-checked cursor over a stored file's bytes: every read names what it was reading and where it
//! stopped, and nothing is allocated for a claimed length before the bytes are known to be there.

/// Where and why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FormatError {
    pub(crate) what: &'static str,
    pub(crate) offset: usize,
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let err = FormatError {
            what,
            offset: self.pos,
        };
        let end = self.pos.checked_add(n).ok_or(err)?;
        let s = self.buf.get(self.pos..end).ok_or(err)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let at = self.pos;
        self.take(N, what)?
            .try_into()
            .map_err(|_| FormatError { what, offset: at })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A check on a value just read; the error points at `at`.
    pub(crate) fn ensure(ok: bool, what: &'static str, at: usize) -> Result<(), FormatError> {
        if ok {
            Ok(())
        } else {
            Err(FormatError { what, offset: at })
        }
    }

    /// The whole input must be consumed.
    pub(crate) fn finish(self) -> Result<(), FormatError> {
        Self::ensure(self.pos == self.buf.len(), "trailing bytes", self.pos)
    }
}
