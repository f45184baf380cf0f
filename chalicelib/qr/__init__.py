"""QR codes for links (issue #7): render, store in S3 + DynamoDB, publish `qr.created`."""
