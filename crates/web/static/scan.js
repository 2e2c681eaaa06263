// The patient portal's QR scanner: where the browser can read QR codes from the camera
// (BarcodeDetector), a button starts the camera and the first code read fills the form and
// sends it. Elsewhere the page works without this script: the code is typed or pasted.
(() => {
  const start = document.getElementById('camera-start');
  const box = document.getElementById('camera');
  const view = document.getElementById('camera-view');
  const form = document.getElementById('scan-form');
  const field = document.getElementById('payload');
  if (!start || !('BarcodeDetector' in window) || !navigator.mediaDevices?.getUserMedia) return;
  start.hidden = false;
  start.addEventListener('click', async () => {
    let stream;
    let detector;
    try {
      detector = new window.BarcodeDetector({ formats: ['qr_code'] });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      view.srcObject = stream;
      await view.play();
    } catch {
      // No camera, refused, or no QR support after all: the camera goes off, typing stays.
      stream?.getTracks().forEach((t) => t.stop());
      start.hidden = true;
      field.focus();
      return;
    }
    box.hidden = false;
    start.hidden = true;
    const look = async () => {
      const codes = await detector.detect(view).catch(() => []);
      const code = codes.find((c) => c.rawValue.startsWith('ehrshare:location:'));
      if (code) {
        stream.getTracks().forEach((t) => t.stop());
        field.value = code.rawValue;
        form.submit();
        return;
      }
      requestAnimationFrame(look);
    };
    look();
  });
})();
