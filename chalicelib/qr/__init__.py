"""QR codes for links: render, store in S3 + DynamoDB, publish `qr.created`."""
