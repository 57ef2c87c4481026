//! `aws-lambda`: an Envoy route becomes a call to an AWS Lambda function
//! through API Gateway or a Lambda Function URL, signed with SigV4.

pub mod sigv4;
