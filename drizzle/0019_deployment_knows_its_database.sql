CREATE TABLE "deployment" (
	"only" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"role" text NOT NULL,
	"system_identifier" text,
	"database_oid" bigint NOT NULL,
	"neon_timeline_id" text,
	"database_name" text NOT NULL,
	"guardrails" jsonb NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "deployment_one_row" CHECK ("deployment"."only"),
	CONSTRAINT "deployment_role_known" CHECK ("deployment"."role" in ('production', 'preview'))
);
