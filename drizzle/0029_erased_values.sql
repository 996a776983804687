CREATE TABLE "erased_values" (
	"kind" text NOT NULL,
	"value_hash" "bytea" NOT NULL,
	CONSTRAINT "erased_values_kind_value_hash_pk" PRIMARY KEY("kind","value_hash"),
	CONSTRAINT "erased_values_kind_known" CHECK ("erased_values"."kind" in ('email', 'phone'))
);
--> statement-breakpoint
CREATE TABLE "erasure_key" (
	"only" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"inner_pad" "bytea" NOT NULL,
	"outer_pad" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "erasure_key_one_row" CHECK ("erasure_key"."only"),
	CONSTRAINT "erasure_key_block_size" CHECK (octet_length("erasure_key"."inner_pad") = 64 and octet_length("erasure_key"."outer_pad") = 64)
);
