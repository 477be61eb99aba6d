//! One AWS session per invocation: the tokio runtime, Region and endpoint resolution, the
//! credential chain (bounded so that metadata probing off-cloud cannot stall a sign), and the
//! translation of SDK errors into contract errors. Calls go through [`Session::call`], which adds
//! the invocation's deadline and the shared bounded, jittered retry.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use aws_config::imds;
use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::config::{Credentials, ProvideCredentials};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::body::SdkBody;
use http_body_util::{LengthLimitError, Limited};
use plugin_protocol::bounded::MAX_RESPONSE_BYTES;
use plugin_protocol::config::PlainHttp;
use plugin_protocol::error::error_chain;
pub use plugin_protocol::remote::Call;
use plugin_protocol::remote::{map_failure, Class, RemoteFailure, Transport};
use plugin_protocol::{ConfigKey, Context, PluginError, Result};

use crate::keyref::KeyRef;
use crate::{CERTIFICATE_CHAIN_SECRET, ENDPOINT_URL, PROFILE, REGION, SECRETS_ENDPOINT_URL};

/// An attempt that timed out with less than this left of the deadline used the deadline up.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Per-attempt TCP connect timeout for KMS and Secrets Manager.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds of one KMS / Secrets Manager attempt (a third of the deadline, within these).
const ATTEMPT_TIMEOUT_MIN: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT_MAX: Duration = Duration::from_secs(10);
/// Instance metadata (IMDS) bounds: on EC2 it answers in milliseconds; off-cloud the address is
/// unreachable or black-holed, and the default chain must give up quickly.
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const IMDS_READ_TIMEOUT: Duration = Duration::from_secs(1);
const IMDS_ATTEMPTS: u32 = 2;
const IMDS_OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// What to tell a user without credentials.
pub const CREDENTIALS_HELP: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
     AWS_SESSION_TOKEN for temporary credentials), or a profile from ~/.aws/config with \
     pluginConfig profile or AWS_PROFILE (for IAM Identity Center run `aws sso login` first), or \
     run where a role is provided (EKS web identity, ECS task role, EC2 instance profile)";

/// A connected AWS session for one invocation.
pub struct Session {
    rt: tokio::runtime::Runtime,
    sdk: SdkConfig,
    pub region: String,
    /// The KMS endpoint URL as users see it in messages.
    pub kms_endpoint: String,
    kms_endpoint_override: Option<String>,
}

impl Session {
    /// Creates the runtime, resolves Region, endpoint and credentials. No KMS call is made.
    pub fn open(ctx: &Context, key: Option<&KeyRef>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::generic(format!("cannot start the async runtime: {e}")))?;
        let config = &ctx.config;
        let profile = config.get_with_source(&PROFILE);
        // The endpoint: awskms://host:port/… in the keyId, else endpoint_url (pluginConfig,
        // NOTATION_AWS_KMS_ENDPOINT_URL, AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL).
        let kms_endpoint_override = match key.and_then(|k| k.endpoint.clone()) {
            Some(e) => Some(e),
            None => configured_endpoint(ctx, &ENDPOINT_URL)?,
        };
        let http = if plain_http_only(ctx, kms_endpoint_override.as_deref(), profile.is_some()) {
            // A local KMS (LocalStack) with static keys: reading the system's trust store
            // would cost milliseconds at every start, and nothing here speaks TLS.
            aws_smithy_http_client::Builder::new().build_http()
        } else {
            // The system's roots read once, within the first request's wait (crate::https).
            crate::https::client()?
        };
        let provider_config = ProviderConfig::without_region().with_http_client(http.clone());
        // Built once, and only if the Region or the credentials come from a chain that may ask
        // instance metadata: not with both in the environment (or a key ARN), as in CI.
        let imds_cell = std::cell::OnceCell::new();
        let imds_client = || {
            imds_cell
                .get_or_init(|| {
                    imds::Client::builder()
                        .configure(&provider_config)
                        .connect_timeout(IMDS_CONNECT_TIMEOUT)
                        .read_timeout(IMDS_READ_TIMEOUT)
                        .max_attempts(IMDS_ATTEMPTS)
                        .operation_timeout(IMDS_OPERATION_TIMEOUT)
                        .build()
                })
                .clone()
        };

        let region = rt.block_on(async {
            tokio::time::timeout(
                ctx.deadline.remaining(),
                resolve_region(
                    ctx,
                    key,
                    profile.as_ref().map(|(p, _)| p.as_str()),
                    &provider_config,
                    &imds_client,
                ),
            )
            .await
            .map_err(|_| ctx.deadline.exceeded("looking up the AWS Region"))?
        })?;
        tracing::debug!(%region, endpoint = ?kms_endpoint_override, ?profile, "aws session");

        let credentials = rt.block_on(async {
            tokio::time::timeout(
                ctx.deadline.remaining(),
                resolve_credentials(&provider_config, &imds_client, profile.as_ref(), &region),
            )
            .await
            .map_err(|_| {
                let mut e = ctx.deadline.exceeded("loading AWS credentials");
                e.message = format!("{}; {CREDENTIALS_HELP}", e.message);
                e
            })?
        })?;

        // One attempt may take a third of the deadline (3 to 10 s), so that a stalled connection
        // is retried within the deadline instead of consuming all of it.
        let total = ctx.deadline.total();
        let attempt = (total / 3).clamp(ATTEMPT_TIMEOUT_MIN, ATTEMPT_TIMEOUT_MAX);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(total))
            .operation_attempt_timeout(attempt.min(total))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(region.clone()))
            .credentials_provider(credentials)
            // Retries are ours (bounded by the invocation's deadline, honouring throttling).
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some((p, _)) = &profile {
            loader = loader.profile_name(p);
        }
        let sdk = rt.block_on(loader.load());
        if let Some(url) = &kms_endpoint_override {
            refuse_variants_of_a_fixed_endpoint(&sdk, "KMS", url)?;
        }
        let kms_endpoint = kms_endpoint_override
            .clone()
            .unwrap_or_else(|| default_endpoint("kms", &region));
        Ok(Self {
            rt,
            sdk,
            region,
            kms_endpoint,
            kms_endpoint_override,
        })
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        let mut b = aws_sdk_kms::config::Builder::from(&self.sdk).interceptor(BoundedBodies);
        if let Some(url) = &self.kms_endpoint_override {
            b = b
                .endpoint_url(url)
                .endpoint_resolver(FixedEndpoint(url.clone()));
        }
        aws_sdk_kms::Client::from_conf(b.build())
    }

    /// A Secrets Manager client and the endpoint it talks to (for messages).
    pub fn secrets_manager(
        &self,
        ctx: &Context,
    ) -> Result<(aws_sdk_secretsmanager::Client, String)> {
        let mut b = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
        let endpoint = match configured_endpoint(ctx, &SECRETS_ENDPOINT_URL)? {
            Some(url) => {
                refuse_variants_of_a_fixed_endpoint(&self.sdk, "Secrets Manager", &url)?;
                b = b
                    .endpoint_url(&url)
                    .endpoint_resolver(FixedEndpoint(url.clone()));
                url
            }
            None => default_endpoint("secretsmanager", &self.region),
        };
        Ok((
            aws_sdk_secretsmanager::Client::from_conf(b.build()),
            endpoint,
        ))
    }

    /// Runs one AWS call (made anew by `f` for each attempt) within the invocation's deadline,
    /// retrying throttling and transient failures with the shared bounded, jittered backoff.
    pub fn call<T, E, F, Fut>(&self, ctx: &Context, what: &Call, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let doing = format!(
            "calling {} {} at {}",
            what.service, what.operation, what.endpoint
        );
        self.rt.block_on(plugin_protocol::remote::retry(
            &ctx.deadline,
            &doing,
            || {
                let attempt = f();
                async {
                    match attempt.await {
                        Ok(v) => Ok(v),
                        // The SDK's attempt timeout and the deadline end together (a loaded
                        // machine decides which fires first): the deadline it is.
                        Err(SdkError::TimeoutError(_))
                            if ctx.deadline.remaining() < DEADLINE_MARGIN =>
                        {
                            Err(ctx.deadline.exceeded(&doing))
                        }
                        Err(e) => Err(map_sdk_error(e, what, &self.region)),
                    }
                }
            },
        ))
    }
}

pub type HttpResponse = aws_sdk_kms::config::http::HttpResponse;

/// Bounds every response body by [`MAX_RESPONSE_BYTES`] before the SDK buffers it: a KMS or
/// Secrets Manager answer is a few KiB, and something posing as AWS that sends 100 MB is refused
/// at the bound (see [`body_too_large`]), not read whole.
#[derive(Debug)]
struct BoundedBodies;

impl Intercept for BoundedBodies {
    fn name(&self) -> &'static str {
        "BoundedBodies"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_sdk_kms::error::BoxError> {
        let response = context.response_mut();
        let body = response.take_body();
        *response.body_mut() = SdkBody::from_body_1_x(Limited::new(body, MAX_RESPONSE_BYTES));
        Ok(())
    }
}

/// Whether reading a response failed because its body passed [`MAX_RESPONSE_BYTES`].
fn body_too_large(err: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether this invocation needs no TLS at all: KMS at a plain-HTTP endpoint (a local KMS), no
/// Secrets Manager chain, and static keys from the environment (no profile, SSO or role, whose
/// credential endpoints are HTTPS).
fn plain_http_only(ctx: &Context, kms_endpoint: Option<&str>, profile: bool) -> bool {
    kms_endpoint.is_some_and(|e| e.starts_with("http://"))
        && ctx.config.get(&CERTIFICATE_CHAIN_SECRET).is_none()
        && !profile
        && std::env::var("AWS_PROFILE").is_err()
        && std::env::var("AWS_ACCESS_KEY_ID").is_ok_and(|v| !v.trim().is_empty())
        && std::env::var("AWS_SECRET_ACCESS_KEY").is_ok_and(|v| !v.trim().is_empty())
}

/// An endpoint setting, an http(s):// URL (plain http for a local KMS such as LocalStack); the
/// standard `AWS_ENDPOINT_URL*` variables are skipped when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, as the SDKs do (pluginConfig and
/// `NOTATION_AWS_KMS_*` still count).
fn configured_endpoint(ctx: &Context, key: &ConfigKey) -> Result<Option<String>> {
    let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let ignored = |source: &str| ignore && source.contains("AWS_ENDPOINT_URL");
    if ctx
        .config
        .get_with_source(key)
        .is_none_or(|(_, source)| ignored(&source))
    {
        return Ok(None);
    }
    let url = ctx.config.url(
        key,
        PlainHttp::Allowed,
        "https://kms.us-east-1.amazonaws.com",
    )?;
    Ok(url.map(|(url, _)| url))
}

/// A configured endpoint URL, as the SDK's endpoint rules return it for KMS and Secrets Manager
/// (once [`refuse_variants_of_a_fixed_endpoint`] has passed). The rules' own resolver compiles
/// its patterns at its first use: at every start, for an answer known beforehand. (It is built
/// all the same, by the SDK's service runtime plugin, so the partitions document it loads is
/// still parsed at every start.)
#[derive(Debug)]
struct FixedEndpoint(String);

impl FixedEndpoint {
    fn endpoint(&self) -> aws_smithy_types::endpoint::Endpoint {
        aws_smithy_types::endpoint::Endpoint::builder()
            .url(self.0.clone())
            .build()
    }
}

impl aws_sdk_kms::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _: &'a aws_sdk_kms::config::endpoint::Params,
    ) -> aws_sdk_kms::config::endpoint::EndpointFuture<'a> {
        aws_sdk_kms::config::endpoint::EndpointFuture::ready(Ok(self.endpoint()))
    }
}

impl aws_sdk_secretsmanager::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _: &'a aws_sdk_secretsmanager::config::endpoint::Params,
    ) -> aws_sdk_secretsmanager::config::endpoint::EndpointFuture<'a> {
        aws_sdk_secretsmanager::config::endpoint::EndpointFuture::ready(Ok(self.endpoint()))
    }
}

/// A FIPS or dual-stack endpoint asked for (`AWS_USE_FIPS_ENDPOINT`,
/// `AWS_USE_DUALSTACK_ENDPOINT`, or the profile's `use_fips_endpoint`, `use_dualstack_endpoint`)
/// with a configured endpoint URL: the SDK's rules refuse the pair, and this says so before any
/// request (the SDK's refusal came as a transport failure, retried).
fn refuse_variants_of_a_fixed_endpoint(sdk: &SdkConfig, service: &str, url: &str) -> Result<()> {
    let variant = if sdk.use_fips() == Some(true) {
        "a FIPS endpoint (AWS_USE_FIPS_ENDPOINT or the profile's use_fips_endpoint)"
    } else if sdk.use_dual_stack() == Some(true) {
        "a dual-stack endpoint (AWS_USE_DUALSTACK_ENDPOINT or the profile's use_dualstack_endpoint)"
    } else {
        return Ok(());
    };
    Err(PluginError::validation(format!(
        "{variant} is asked for, and the {service} endpoint is set to {url}: AWS has no such \
         variant of a given endpoint; unset one of them (a FIPS or dual-stack endpoint URL can be \
         set as the endpoint itself)"
    )))
}

fn default_endpoint(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

/// Region: a key ARN's Region wins (the key lives there); then pluginConfig region,
/// NOTATION_AWS_KMS_REGION, AWS_REGION, AWS_DEFAULT_REGION; then the profile; then instance
/// metadata (bounded).
async fn resolve_region(
    ctx: &Context,
    key: Option<&KeyRef>,
    profile: Option<&str>,
    provider_config: &ProviderConfig,
    imds: &impl Fn() -> imds::Client,
) -> Result<String> {
    if let Some(region) = key.and_then(|k| k.region.clone()) {
        return Ok(region);
    }
    if let Some(region) = ctx.config.get(&REGION) {
        return Ok(region);
    }
    let mut profile_region =
        aws_config::profile::ProfileFileRegionProvider::builder().configure(provider_config);
    if let Some(p) = profile {
        profile_region = profile_region.profile_name(p);
    }
    let chain = RegionProviderChain::first_try(profile_region.build()).or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .configure(provider_config)
            .imds_client(imds())
            .build(),
    );
    match chain.region().await {
        Some(region) => Ok(region.to_string()),
        None => Err(PluginError::validation(
            "no AWS Region: set pluginConfig region (or AWS_REGION), use a key ARN, or set \
             region in the AWS profile",
        )),
    }
}

/// The SDK's default credential chain (environment, profile incl. SSO / assume-role /
/// credential_process, web identity, container, instance metadata), resolved once; static keys
/// in the environment without a profile are taken as they are.
async fn resolve_credentials(
    provider_config: &ProviderConfig,
    imds: &impl Fn() -> imds::Client,
    profile: Option<&(String, String)>,
    region: &str,
) -> Result<Credentials> {
    // The chain's first source: static keys in the environment. Without a profile they are
    // what the chain would return, so it is not built (its web identity link alone builds an
    // STS client: a millisecond at each start).
    if profile.is_none() {
        let env =
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
        if let Ok(credentials) = env.provide_credentials().await {
            return Ok(credentials);
        }
    }
    let mut builder = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .configure(provider_config.clone())
        .imds_client(imds())
        .region(Region::new(region.to_owned()));
    if let Some((p, _)) = profile {
        builder = builder.profile_name(p);
    }
    let chain = builder.build().await;
    chain
        .provide_credentials()
        .await
        .map_err(|e| credentials_error(e, profile))
}

fn credentials_error(e: CredentialsError, profile: Option<&(String, String)>) -> PluginError {
    use CredentialsError as C;
    let detail = error_chain(&e);
    let profile_note = profile
        .map(|(p, source)| {
            format!(
                " (profile '{p}' from {source} gave none: is it defined in ~/.aws/config or \
                 ~/.aws/credentials?)"
            )
        })
        .unwrap_or_default();
    match e {
        C::CredentialsNotLoaded(_) => PluginError::access_denied(format!(
            "no AWS credentials found{profile_note} (tried environment variables, the shared \
             config and credentials files, web identity, container and instance metadata): \
             {CREDENTIALS_HELP}"
        ))
        .with_metadata("detail", detail),
        C::InvalidConfiguration(_) => PluginError::validation(format!(
            "the AWS credentials configuration is invalid: {detail}"
        )),
        C::ProviderTimedOut(_) => PluginError::access_denied(format!(
            "loading AWS credentials timed out ({detail}): {CREDENTIALS_HELP}"
        )),
        _ => PluginError::access_denied(format!(
            "cannot load AWS credentials: {detail}; {CREDENTIALS_HELP}"
        )),
    }
}

/// The key state named in a KMS message ("... is pending deletion", "... is disabled").
fn key_state(code: &str, message: &str) -> Option<&'static str> {
    if code == "DisabledException" {
        return Some("Disabled");
    }
    let m = message.to_ascii_lowercase();
    [
        ("pending deletion", "PendingDeletion"),
        ("pendingdeletion", "PendingDeletion"),
        ("pending replica deletion", "PendingReplicaDeletion"),
        ("pendingreplicadeletion", "PendingReplicaDeletion"),
        ("pending import", "PendingImport"),
        ("pendingimport", "PendingImport"),
        ("disabled", "Disabled"),
        ("unavailable", "Unavailable"),
        ("creating", "Creating"),
        ("updating", "Updating"),
    ]
    .iter()
    .find(|(needle, _)| m.contains(needle))
    .map(|(_, state)| *state)
}

/// What an AWS error code means: AWS answers 400 for a refused request, a throttled one and
/// bad credentials alike, so the code decides; an unknown code with 400 is no more than a
/// failure.
fn class_of(code: &str, status: u16) -> Option<Class> {
    Some(match code {
        "AccessDeniedException" | "AccessDenied" => Class::Denied,
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => Class::Unauthenticated,
        "NotFoundException" | "ResourceNotFoundException" => Class::NotFound,
        "DisabledException"
        | "KMSInvalidStateException"
        | "InvalidKeyUsageException"
        | "UnsupportedOperationException"
        | "InvalidArnException"
        | "ValidationException"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "InvalidKeyIdException" => Class::Invalid,
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "LimitExceededException"
        | "RequestLimitExceeded" => Class::Throttled,
        "KMSInternalException"
        | "InternalServiceError"
        | "InternalFailure"
        | "InternalServiceErrorException"
        | "ServiceUnavailable"
        | "DependencyTimeoutException"
        | "KeyUnavailableException" => Class::Unavailable,
        _ if status == 400 => Class::Failed,
        _ => return None,
    })
}

/// The typed failure of an SDK error: AWS's code, whole message and request id, or the
/// transport failure.
fn failure_of<E>(err: SdkError<E, HttpResponse>) -> RemoteFailure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let full = error_chain(&err);
    let too_large = body_too_large(&err);
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let request_id = se
                .raw()
                .headers()
                .get("x-amzn-RequestId")
                .or_else(|| se.raw().headers().get("x-amz-request-id"))
                .map(str::to_owned);
            let e = se.err();
            let code = e.code().unwrap_or("").to_owned();
            let message = e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| error_chain(e));
            let class = class_of(&code, status);
            let f =
                RemoteFailure::answered(status, Some(code), message).with_request_id(request_id);
            match class {
                Some(c) => f.with_class(c),
                None => f,
            }
        }
        SdkError::DispatchFailure(df) => {
            let detail = df
                .as_connector_error()
                .map(|c| error_chain(c))
                .unwrap_or_else(|| full.clone());
            let kind = if df.is_timeout() {
                Transport::Timeout
            } else if df.is_user() {
                Transport::Request
            } else {
                Transport::from_detail(&detail)
            };
            RemoteFailure::transport(kind, detail)
        }
        SdkError::TimeoutError(_) => RemoteFailure::transport(Transport::Timeout, full),
        SdkError::ResponseError(_) if too_large => {
            RemoteFailure::transport(Transport::BodyTooLarge, full)
        }
        SdkError::ResponseError(_) => RemoteFailure::transport(Transport::Unreadable, full),
        _ => RemoteFailure::transport(Transport::Request, full),
    }
}

/// A call to an AWS `service` at `endpoint` that needs the IAM `action`, for messages.
pub fn call(
    service: &'static str,
    operation: &str,
    target: String,
    endpoint: &str,
    action: &str,
) -> Call {
    Call {
        service,
        operation: operation.to_owned(),
        target,
        endpoint: endpoint.to_owned(),
        permission: Some(action.to_owned()),
        code_key: "awsErrorCode",
    }
}

/// Translates an SDK error into the contract's codes ([`map_failure`]), with AWS's whole
/// message, the request id and AWS's own advice.
pub fn map_sdk_error<E>(err: SdkError<E, HttpResponse>, call: &Call, region: &str) -> PluginError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let failure = failure_of(err);
    let code = failure.code.clone().unwrap_or_default();
    let state = matches!(
        code.as_str(),
        "DisabledException" | "KMSInvalidStateException"
    )
    .then(|| key_state(&code, &failure.message).unwrap_or("not usable"));
    let network = "check endpoint_url / the awskms:// host, the Region, proxy and network settings";
    let hint = match (failure.transport, failure.class()) {
        (Some(Transport::BodyTooLarge), _) => {
            "check endpoint_url, the awskms:// host and proxy settings".to_owned()
        }
        (Some(Transport::Tls | Transport::Request), _) => String::new(),
        (Some(_), _) => network.replace("the Region", &format!("the Region {region}")),
        (None, Some(Class::Denied)) => "see the IAM policy in the plugin's README".to_owned(),
        (None, Some(Class::Unauthenticated)) => CREDENTIALS_HELP.to_owned(),
        (None, Some(Class::NotFound)) => format!(
            "check the keyId, the Region {region} (pluginConfig region or a key ARN) and the \
             account"
        ),
        (None, Some(Class::Invalid)) => match (state, code.as_str()) {
            (Some(state), _) => {
                let what = match state {
                    "Disabled" => "; enable it (aws kms enable-key) or use another key",
                    "PendingDeletion" => {
                        "; cancel the deletion (aws kms cancel-key-deletion, then enable-key) or \
                         use another key"
                    }
                    _ => "",
                };
                format!(
                    "{} cannot be used: its key state is {state}{what}",
                    call.target
                )
            }
            (None, "InvalidKeyUsageException") => {
                "notation needs an asymmetric SIGN_VERIFY key".to_owned()
            }
            (None, "UnsupportedOperationException") => "notation needs an asymmetric \
                 SIGN_VERIFY key (RSA_2048/3072/4096 or ECC_NIST_P256/P384/P521)"
                .to_owned(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let answered = failure.transport.is_none();
    let mut e = map_failure(call, &failure, &hint);
    if answered {
        e = e
            .with_metadata("operation", format!("{}:{}", call.service, call.operation))
            .with_metadata("region", region.to_owned());
    }
    if let Some(state) = state {
        e = e.with_metadata("keyState", state);
    }
    e
}
