// Express 4 is installed beside Express 5 under the alias `express4`; the
// adapter tests type it with Express 5's declarations (the API they use is common to both).
declare module 'express4' {
  import express from 'express';
  export default express;
}
