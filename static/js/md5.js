/* MD5 of a byte array → lowercase hex (RFC 1321). The router's CHAP login needs
   md5(chap-id + password + chap-challenge) over raw bytes, as MikroTik's own md5.js computes. */
(function () {
  "use strict";
  var S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
  var K = [];
  for (var i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;

  function md5Bytes(bytes) {
    var n = bytes.length;
    var words = ((n + 8) >>> 6) + 1;
    var M = new Array(words * 16).fill(0);
    for (var b = 0; b < n; b++) M[b >> 2] |= (bytes[b] & 0xff) << ((b % 4) * 8);
    M[n >> 2] |= 0x80 << ((n % 4) * 8);
    M[words * 16 - 2] = (n * 8) | 0;
    M[words * 16 - 1] = Math.floor(n / 536870912) | 0;
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    for (var blk = 0; blk < M.length; blk += 16) {
      var A = a0, B = b0, C = c0, D = d0;
      for (var j = 0; j < 64; j++) {
        var F, g;
        if (j < 16) { F = (B & C) | (~B & D); g = j; }
        else if (j < 32) { F = (D & B) | (~D & C); g = (5 * j + 1) % 16; }
        else if (j < 48) { F = B ^ C ^ D; g = (3 * j + 5) % 16; }
        else { F = C ^ (B | ~D); g = (7 * j) % 16; }
        var tmp = D;
        D = C;
        C = B;
        var x = (A + F + K[j] + M[blk + g]) | 0;
        B = (B + ((x << S[j]) | (x >>> (32 - S[j])))) | 0;
        A = tmp;
      }
      a0 = (a0 + A) | 0; b0 = (b0 + B) | 0; c0 = (c0 + C) | 0; d0 = (d0 + D) | 0;
    }
    var out = "";
    [a0, b0, c0, d0].forEach(function (w) {
      for (var k = 0; k < 4; k++) out += ((w >>> (k * 8)) & 0xff).toString(16).padStart(2, "0");
    });
    return out;
  }

  function hexToBytes(hex) {
    var out = [];
    for (var i = 0; i < hex.length; i += 2) out.push(parseInt(hex.substr(i, 2), 16));
    return out;
  }

  function utf8Bytes(text) {
    return Array.from(new TextEncoder().encode(text));
  }

  window.portalMd5 = { md5Bytes: md5Bytes, hexToBytes: hexToBytes, utf8Bytes: utf8Bytes };
})();
